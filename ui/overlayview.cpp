// Zoomable, pannable overlay picture with patch hover (see overlayview.h).
#include "ui/overlayview.h"

#include <QGraphicsPixmapItem>
#include <QGraphicsRectItem>
#include <QGraphicsScene>
#include <QMouseEvent>
#include <QToolTip>
#include <QWheelEvent>
#include <cmath>

#include "ui/patch_info.h"

namespace dlui {

OverlayView::OverlayView(QWidget* parent) : QGraphicsView(parent) {
    setScene(new QGraphicsScene(this));
    m_pixmap = scene()->addPixmap(QPixmap());
    m_pixmap->setTransformationMode(Qt::FastTransformation);  // patches stay crisp when zoomed
    m_highlight = scene()->addRect(QRectF(), QPen(QColor(255, 64, 64), 0));
    m_highlight->setZValue(1);
    m_highlight->setVisible(false);
    setDragMode(QGraphicsView::ScrollHandDrag);
    setTransformationAnchor(QGraphicsView::AnchorUnderMouse);
    setResizeAnchor(QGraphicsView::AnchorViewCenter);
    setRenderHint(QPainter::SmoothPixmapTransform, false);
    setMouseTracking(true);
    viewport()->setMouseTracking(true);
    setMinimumSize(160, 160);
    setBackgroundBrush(QColor(40, 40, 40));
}

void OverlayView::setImage(const QImage& image, int pictureHeight) {
    const bool sizeChanged = image.size() != m_image.size();
    m_image = image;
    m_pictureHeight = pictureHeight;
    m_pixmap->setPixmap(QPixmap::fromImage(image));
    scene()->setSceneRect(QRectF(QPointF(0, 0), QSizeF(image.size())));
    if (sizeChanged || !m_userZoomed) fitToWindow();
}

int OverlayView::patchAtViewport(const QPoint& pos) const {
    if (m_image.isNull()) return -1;
    const QPointF p = mapToScene(pos);
    if (p.y() >= m_pictureHeight) return -1;
    return patch_at(m_geometry, p.x(), p.y(), m_view);
}

void OverlayView::highlightPatch(int index) {
    if (index < 0 || m_geometry.cols <= 0) {
        m_highlight->setVisible(false);
        return;
    }
    const dl::Box b = m_geometry.patch_box_original(index);
    m_highlight->setRect(QRectF(b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0));
    m_highlight->setVisible(b.x1 > b.x0 && b.y1 > b.y0);
}

void OverlayView::showPatchTooltip(const QString& text, const QPoint& globalPos) {
    m_hoverText = text;
    setToolTip(text);
    if (text.isEmpty()) QToolTip::hideText();
    else QToolTip::showText(globalPos, text, this);
}

double OverlayView::zoomFactor() const { return transform().m11(); }

void OverlayView::zoomBy(double factor) {
    const double z = zoomFactor() * factor;
    if (z < 0.02 || z > 64) return;
    scale(factor, factor);
    m_userZoomed = true;
}

void OverlayView::fitToWindow() {
    if (m_image.isNull()) return;
    fitInView(scene()->sceneRect(), Qt::KeepAspectRatio);
    m_userZoomed = false;
}

void OverlayView::wheelEvent(QWheelEvent* event) {
    const double steps = event->angleDelta().y() / 120.0;
    if (steps == 0) return;
    zoomBy(std::pow(1.25, steps));
    event->accept();
}

void OverlayView::mouseMoveEvent(QMouseEvent* event) {
    QGraphicsView::mouseMoveEvent(event);
    const int index = patchAtViewport(event->position().toPoint());
    if (index != m_hovered) {
        m_hovered = index;
        emit patchHovered(index, event->globalPosition().toPoint());
    }
}

void OverlayView::leaveEvent(QEvent* event) {
    QGraphicsView::leaveEvent(event);
    if (m_hovered != -1) {
        m_hovered = -1;
        emit patchHovered(-1, QPoint());
    }
}

void OverlayView::resizeEvent(QResizeEvent* event) {
    QGraphicsView::resizeEvent(event);
    if (!m_userZoomed) fitToWindow();
}

}  // namespace dlui
